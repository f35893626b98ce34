// ERROR: duplicate key 'a' in dictionary attribute
"test.op"() {a = 1, b, a = 2} : () -> ()
