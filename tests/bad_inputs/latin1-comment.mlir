// ERROR: input is not valid UTF-8
// naïve comment
"test.op"() : () -> ()
