// ERROR: undefined
"test.op"() : () -> () loc(#nowhere)
