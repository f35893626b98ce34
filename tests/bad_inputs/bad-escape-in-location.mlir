// ERROR: unknown escape '\q' in string
"test.op"() : () -> () loc("x\q")
