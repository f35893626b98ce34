// RUN: xir-opt --allow-unregistered-dialect --split-input-file %s | filecheck %s

// Each chunk between "// -----" lines is read, verified and printed on its own, and the outputs
// are joined with the same marker. Names may repeat across chunks.

// CHECK:      builtin.module {
// CHECK-NEXT:   %x = "test.first"() : () -> i32
// CHECK-NEXT: }
// CHECK-NEXT: // -----
// CHECK-NEXT: builtin.module {
// CHECK-NEXT:   %x = "test.second"() : () -> f32
// CHECK-NEXT: }
// CHECK-NEXT: // -----
// CHECK-NEXT: builtin.module {
// CHECK-NEXT: }
// CHECK-NOT:  test
%x = "test.first"() : () -> i32

// -----

%x = "test.second"() : () -> f32

// -----
