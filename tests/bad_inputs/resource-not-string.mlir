// ERROR: resource 'r' must be a hex string
{-#
  dialect_resources: { builtin: { r: 5 } }
#-}
