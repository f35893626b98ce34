// ERROR: resource 'r' lacks its 4-byte alignment header
{-#
  dialect_resources: { builtin: { r: "0x01" } }
#-}
