// ERROR: redefinition of block '^bb1'
"test.region"() ({
^bb1:
  "test.op"() : () -> ()
^bb1:
  "test.op"() : () -> ()
}) : () -> ()
