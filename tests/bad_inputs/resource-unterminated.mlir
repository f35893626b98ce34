// ERROR: unexpected end of input
{-#
  dialect_resources: { builtin: { r: "0x01000000" } }
