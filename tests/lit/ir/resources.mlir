// RUN: xir-opt --allow-unregistered-dialect %s | filecheck %s
// RUN: xir-opt --allow-unregistered-dialect %s | xir-opt --allow-unregistered-dialect | filecheck %s

// Large constants live in the resource section, referred to by dense_resource<name>.

// CHECK:      %w = "test.constant"() {value = dense_resource<w> : tensor<2xi32>} : () -> tensor<2xi32>
// CHECK-NEXT: %b = "test.constant"() {value = dense_resource<"quoted name"> : tensor<1xf32>} : () -> tensor<1xf32>
%w = "test.constant"() {value = dense_resource<w> : tensor<2xi32>} : () -> tensor<2xi32>
%b = "test.constant"() {value = dense_resource<"quoted name"> : tensor<1xf32>} : () -> tensor<1xf32>

// CHECK:      {-#
// CHECK-NEXT:   dialect_resources: {
// CHECK-NEXT:     builtin: {
// CHECK-NEXT:       w: "0x040000000100000002000000",
// CHECK-NEXT:       "quoted name": "0x040000000000803F"
// CHECK-NEXT:     }
// CHECK-NEXT:   }
// CHECK-NEXT: #-}
{-#
  dialect_resources: {
    builtin: {
      w: "0x040000000100000002000000",
      "quoted name": "0x040000000000803F"
    }
  }
#-}
