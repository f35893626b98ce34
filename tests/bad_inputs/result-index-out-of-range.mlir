// ERROR: result number 5 of '%a' is out of range (it has 2 results)
%a:2 = "test.op"() : () -> (i32, i32)
"test.use"(%a#5) : (i32) -> ()
