// ERROR: operation defines 0 results but was provided 1 to bind
%x = "test.op"() : () -> ()
