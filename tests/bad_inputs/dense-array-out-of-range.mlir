// ERROR: invalid element '300' in array of i8
"test.op"() {x = array<i8: 300>} : () -> ()
