// ERROR: undefined type alias '!nope'
"test.op"() : () -> !nope
