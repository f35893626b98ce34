// ERROR: found '}'
"test.op"() {a =} : () -> ()
