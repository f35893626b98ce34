// ERROR: undefined attribute alias '#nope'
"test.op"() {x = #nope} : () -> ()
