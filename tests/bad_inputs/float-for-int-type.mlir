// ERROR: floating point value not valid for type i32
"test.op"() {x = 1.5 : i32} : () -> ()
