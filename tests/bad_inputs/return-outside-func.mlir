// ERROR: 'func.return' op expects parent op 'func.func'
// ARGS: 
"func.return"() : () -> ()
