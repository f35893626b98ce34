// ERROR: 'builtin.module' op expects one block in its region
// ARGS: 
"builtin.module"() ({
}) : () -> ()
