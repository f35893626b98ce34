// ERROR: duplicate key 'b' in dictionary attribute
"test.op"() {x = {b = [1], b = [2]}} : () -> ()
