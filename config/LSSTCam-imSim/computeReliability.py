# Prompt Processing scores on the CPU; 'auto' uses a GPU where a batch
# reprocessing node has one.
config.device = "auto"
config.batchSize = 256
