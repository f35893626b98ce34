// RUN: xir-opt --allow-unregistered-dialect %s | filecheck %s
// RUN: xir-opt --allow-unregistered-dialect %s | xir-opt --allow-unregistered-dialect | filecheck %s

// Generic operations: result groups and their uses, successors, properties, regions, blocks.

// CHECK-LABEL: func.func @results
func.func @results(%arg: i32) -> (i32, f32) {
  // A numbered group prints as a group; a named one keeps its names, one per result.
  // CHECK-NEXT: %0:2 = "test.two"(%arg) : (i32) -> (i32, f32)
  %9:2 = "test.two"(%arg) : (i32) -> (i32, f32)
  // CHECK-NEXT: %a, %b, %b_1 = "test.three"() : () -> (i1, i8, i16)
  %a, %b:2 = "test.three"() : () -> (i1, i8, i16)
  // CHECK-NEXT: "test.use"(%0#1, %b, %b_1, %a) : (f32, i8, i16, i1) -> ()
  "test.use"(%9#1, %b#0, %b#1, %a) : (f32, i8, i16, i1) -> ()
  // CHECK-NEXT: "func.return"(%0#0, %0#1) : (i32, f32) -> ()
  "func.return"(%9#0, %9#1) : (i32, f32) -> ()
}

// Uses may come before definitions where dominance does not apply (the module is a graph region).
// CHECK-LABEL: "test.graph"() ({
// CHECK-NEXT:    "test.use"(%late_1) : (i8) -> ()
// CHECK-NEXT:    %late, %late_1 = "test.late"() : () -> (i1, i8)
// CHECK-NEXT:  }) : () -> ()
"test.graph"() ({
  "test.use"(%late#1) : (i8) -> ()
  %late:2 = "test.late"() : () -> (i1, i8)
}) : () -> ()

// CHECK-LABEL: func.func @numbered
func.func @numbered() {
  // Numeric names are renumbered in order; named ones are kept.
  // CHECK-NEXT: %0 = "test.a"() : () -> i32
  // CHECK-NEXT: %1 = "test.b"(%0) : (i32) -> i32
  %7 = "test.a"() : () -> i32
  %3 = "test.b"(%7) : (i32) -> i32
  "func.return"() : () -> ()
}

// CHECK-LABEL: func.func @blocks
func.func @blocks(%c: i1, %x: i32) -> i32 {
  // CHECK-NEXT: "test.cond_br"(%c, %x)[^bb1, ^exit] : (i1, i32) -> ()
  "test.cond_br"(%c, %x)[^bb1, ^exit] : (i1, i32) -> ()
// CHECK-NEXT: ^bb1:
^bb1:
  // CHECK-NEXT: "test.br"(%x)[^exit] : (i32) -> ()
  "test.br"(%x)[^exit] : (i32) -> ()
// CHECK-NEXT: ^exit(%y: i32):
^exit(%y: i32):
  // CHECK-NEXT: "func.return"(%y) : (i32) -> ()
  "func.return"(%y) : (i32) -> ()
}

// CHECK-LABEL: func.func @regions
func.func @regions(%x: i32) {
  // CHECK-NEXT: %r = "test.region"(%x) <{kind = "loop", step = 2 : i32}> ({
  // CHECK-NEXT: ^bb0(%i: index):
  // CHECK-NEXT:   "test.body"(%i, %x) : (index, i32) -> ()
  // CHECK-NEXT: }, {
  // CHECK-NEXT: }) {tag} : (i32) -> i64
  %r = "test.region"(%x) <{kind = "loop", step = 2 : i32}> ({
  ^bb0(%i: index):
    "test.body"(%i, %x) : (index, i32) -> ()
  }, {
  }) {tag} : (i32) -> i64
  // An entry block without arguments prints without its label.
  // CHECK-NEXT: "test.region"() ({
  // CHECK-NEXT:   "test.inner"() : () -> ()
  // CHECK-NEXT: }) : () -> ()
  "test.region"() ({
  ^entry:
    "test.inner"() : () -> ()
  }) : () -> ()
  // Several blocks in a nested region: the entry block gets a label too.
  // CHECK-NEXT: "test.region"() ({
  // CHECK-NEXT: ^bb0:
  // CHECK-NEXT:   "test.br"()[^bb1] : () -> ()
  // CHECK-NEXT: ^bb1:
  // CHECK-NEXT:   "test.end"() : () -> ()
  // CHECK-NEXT: }) : () -> ()
  "test.region"() ({
    "test.br"()[^bb1] : () -> ()
  ^bb1:
    "test.end"() : () -> ()
  }) : () -> ()
  "func.return"() : () -> ()
}

// Operation names are strings, so they may need escapes.
// CHECK-LABEL: func.func @names
func.func @names() {
  // CHECK-NEXT: "test.with space"() : () -> ()
  "test.with space"() : () -> ()
  // Empty properties print as none.
  // CHECK-NEXT: "test.op"() : () -> ()
  "test.op"() <{}> : () -> ()
  "func.return"() : () -> ()
}
