// ERROR: expected 'at', found ')'
"test.op"() : () -> () loc(callsite("a"))
