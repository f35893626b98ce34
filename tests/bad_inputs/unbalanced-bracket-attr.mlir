// ERROR: expected ',' or ']', found '}'
"test.op"() {x = [1, 2} : () -> ()
