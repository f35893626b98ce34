// ERROR: integer constant -129 out of range for type si8
"test.op"() <{x = -129 : si8}> : () -> ()
