// ERROR: found '^bb0'
"test.op"() : () -> ()
^bb0:
