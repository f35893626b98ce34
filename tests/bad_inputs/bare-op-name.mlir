// ERROR: found 'nodialect'
nodialect() : () -> ()
