// ERROR: found 'i0'
"test.op"() : () -> i0
