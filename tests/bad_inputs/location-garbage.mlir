// ERROR: found 'garbage'
"test.op"() : () -> () loc(garbage)
