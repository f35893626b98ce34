// ERROR: found 'f31'
"test.op"() : () -> f31
