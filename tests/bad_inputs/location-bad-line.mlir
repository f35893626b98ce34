// ERROR: expected number, found 'x'
"test.op"() : () -> () loc("f.py":x:1)
