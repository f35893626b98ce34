// ERROR: operation 'graph.relu' belongs to unregistered dialect 'graph' (use --allow-unregistered-dialect)
// ARGS: 
%r = "graph.relu"() : () -> tensor<4xf32>
