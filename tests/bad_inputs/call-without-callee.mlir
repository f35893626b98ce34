// ERROR: 'func.call' op requires property 'callee'
// ARGS: 
"func.call"() : () -> ()
