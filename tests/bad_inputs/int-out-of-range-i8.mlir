// ERROR: integer constant 300 out of range for type i8
"test.op"() {x = 300 : i8} : () -> ()
