"""Where entity vectors come from: weighted ALS (behavioural) and MiniLM (semantic), with ranking metrics."""
