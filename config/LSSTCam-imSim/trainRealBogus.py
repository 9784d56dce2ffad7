# DC2 training: the production-style CNN, DMTN-272's 5 % validation split.
config.model.name = "rbcnn"
config.validationFraction = 0.05
config.augment = True
