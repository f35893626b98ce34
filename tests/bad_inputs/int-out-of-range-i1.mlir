// ERROR: integer constant 2 out of range for type i1
"test.op"() {x = 2 : i1} : () -> ()
