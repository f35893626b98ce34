// ERROR: expected ':', found ')'
"test.region"() ({
^bb0(%x):
  "test.op"() : () -> ()
}) : () -> ()
