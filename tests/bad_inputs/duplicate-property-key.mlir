// ERROR: duplicate key 'k' in dictionary attribute
"test.op"() <{k = "x", "k" = "y"}> : () -> ()
