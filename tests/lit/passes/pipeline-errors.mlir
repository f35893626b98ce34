// RUN: not xir-opt %s -p 'cse,,dce' 2>&1 | filecheck %s --check-prefix=EMPTY
// RUN: not xir-opt %s -p 'csx' 2>&1 | filecheck %s --check-prefix=UNKNOWN
// RUN: not xir-opt %s -p 'canonicalize{max-iterations=lots}' 2>&1 | filecheck %s --check-prefix=VALUE
// RUN: not xir-opt %s -p 'canonicalize{nope=1}' 2>&1 | filecheck %s --check-prefix=OPTION
// RUN: not xir-opt %s -p 'dce' --print-ir-after=cde 2>&1 | filecheck %s --check-prefix=PRINT
// RUN: xir-opt %s -p ' cse , dce ' | filecheck %s --check-prefix=SPACES

// A bad pipeline is reported against the pipeline text, with a caret, before any input is read.

// EMPTY:      <pipeline>:1:5: error:
// EMPTY-NEXT: cse,,dce
// EMPTY-NEXT:     ^

// UNKNOWN: <pipeline>:1:1: error: unknown pass 'csx' (did you mean 'cse'?)

// VALUE: <pipeline>:1:{{[0-9]+}}: error: {{.*}}max-iterations

// OPTION: <pipeline>:1:{{[0-9]+}}: error: unknown option 'nope' for pass 'canonicalize'

// PRINT: xir-opt: error: --print-ir-after: unknown pass 'cde' (did you mean 'dce'?)

// SPACES: func.func private @f()
func.func private @f()
