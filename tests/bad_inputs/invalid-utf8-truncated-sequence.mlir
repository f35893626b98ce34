// ERROR: input is not valid UTF-8
"test.op"() : () -> ()
â‚