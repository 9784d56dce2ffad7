# DC2 (LSSTCam-imSim) triplets: Rubin's production cutout size; DC2 templates
# mark pixels beyond the coadd with NO_DATA.
config.cutout.size = 51
config.cutout.normalization = "snrAsinh"
config.cutout.badMaskPlanes = ["NO_DATA"]
