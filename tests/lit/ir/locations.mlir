// RUN: xir-opt --allow-unregistered-dialect %s | filecheck %s
// RUN: xir-opt --allow-unregistered-dialect %s | xir-opt --allow-unregistered-dialect | filecheck %s
// RUN: xir-opt --allow-unregistered-dialect --no-locations %s | filecheck %s --check-prefix=NOLOC

// Every kind of location, on operations, functions and modules.

#l = loc("aliased")

// CHECK:      builtin.module {
// NOLOC:      builtin.module {
builtin.module {
  // CHECK-NEXT: "test.name"() : () -> () loc("conv1")
  // NOLOC-NEXT: "test.name"() : () -> (){{$}}
  "test.name"() : () -> () loc("conv1")
  // CHECK-NEXT: "test.file"() : () -> () loc("model.onnx":12:3)
  "test.file"() : () -> () loc("model.onnx":12:3)
  // CHECK-NEXT: "test.unknown"() : () -> () loc(unknown)
  "test.unknown"() : () -> () loc(unknown)
  // CHECK-NEXT: "test.name_child"() : () -> () loc("relu"("model.onnx":4:1))
  "test.name_child"() : () -> () loc("relu"("model.onnx":4:1))
  // CHECK-NEXT: "test.fused"() : () -> () loc(fused["a", "b":1:2])
  "test.fused"() : () -> () loc(fused["a", "b":1:2])
  // CHECK-NEXT: "test.fused_meta"() : () -> () loc(fused<"conv+relu">["conv", "relu"])
  "test.fused_meta"() : () -> () loc(fused<"conv+relu">["conv", "relu"])
  // CHECK-NEXT: "test.callsite"() : () -> () loc(callsite("callee" at "caller.py":3:4))
  "test.callsite"() : () -> () loc(callsite("callee" at "caller.py":3:4))
  // CHECK-NEXT: "test.alias"() : () -> () loc("aliased")
  "test.alias"() : () -> () loc(#l)
  // CHECK-NEXT: "test.escaped"() : () -> () loc("a \"quoted\" name")
  "test.escaped"() : () -> () loc("a \"quoted\" name")
  // CHECK-NEXT: func.func @f() {
  // CHECK-NEXT:   "func.return"() : () -> () loc("ret")
  // CHECK-NEXT: } loc("f")
  // NOLOC:      func.func @f() {
  // NOLOC-NEXT:   "func.return"() : () -> (){{$}}
  // NOLOC-NEXT: }{{$}}
  func.func @f() {
    "func.return"() : () -> () loc("ret")
  } loc("f")
  // Locations may also be attribute values.
  // CHECK-NEXT: "test.attr"() {where = loc("x":1:1)} : () -> ()
  "test.attr"() {where = loc("x":1:1)} : () -> ()
} loc("top")
// CHECK-NEXT: } loc("top")
// NOLOC:      }{{$}}
