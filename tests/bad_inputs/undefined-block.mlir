// ERROR: reference to an undefined block '^nowhere'
"test.region"() ({
  "test.br"()[^nowhere] : () -> ()
}) : () -> ()
