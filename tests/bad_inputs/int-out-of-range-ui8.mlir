// ERROR: integer constant -1 out of range for type ui8
"test.op"() {x = -1 : ui8} : () -> ()
