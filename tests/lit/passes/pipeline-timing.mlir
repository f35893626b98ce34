// RUN: xir-opt %s -p 'cse,dce' --timing 2>&1 >/dev/null | filecheck %s
// RUN: xir-opt %s --timing 2>&1 >/dev/null | filecheck %s --check-prefix=NOPASS

// --timing reports the wall time of reading, of each pass, of verification and of printing.

// CHECK:      ... Execution time report ...
// CHECK:      Total Execution Time: {{[0-9.]+}} seconds
// CHECK:      ----Wall Time----  ----Name----
// CHECK-NEXT: {{[0-9.]+}} ({{ *[0-9.]+}}%)  Parser
// CHECK-NEXT: {{[0-9.]+}} ({{ *[0-9.]+}}%)  cse
// CHECK-NEXT: {{[0-9.]+}} ({{ *[0-9.]+}}%)  dce
// CHECK-NEXT: {{[0-9.]+}} ({{ *[0-9.]+}}%)  (V) verifier
// CHECK-NEXT: {{[0-9.]+}} ({{ *[0-9.]+}}%)  Output
// CHECK-NEXT: {{[0-9.]+}} (100.0%)  Total

// NOPASS:      Parser
// NOPASS-NEXT: (V) verifier
// NOPASS-NEXT: Output
// NOPASS-NEXT: Total
func.func private @f()
