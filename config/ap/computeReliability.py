# computeReliability in the AP pipeline (ap_pipe's ApPipe.yaml): read what a real
# AP repository holds and write what ap_association's filterDiaSourcePostReliability
# (FilterDiaSourceReliabilityTask) reads. pipelines/_ingredients/RealBogus.yaml and
# pipelines/LSSTCam*/ApPipe.yaml load this file; overriding the label with another
# class drops ap_pipe's config of it, so everything the contracts check is stated here.

# The dataset names of ApPipe.yaml (its contracts compare science, difference,
# diaSources and classifications with the neighbouring tasks' connections).
config.connections.science = "preliminary_visit_image"
config.connections.template = "template_detector"
config.connections.difference = "difference_image"
config.connections.diaSources = "dia_source_unstandardized"
config.connections.classifications = "dia_source_reliability"
config.connections.model = "rb_model"

# The images as the AP pipeline writes them, afw ExposureF, read as they are: the
# cutouts use only their masked images and WCSs. (The conversions to lsst.images
# types need a Detector, which GetTemplateTask's template lacks, and an exposure
# record; MaskedImageV2 converts from no Exposure.)
config.scienceStorageClass = "ExposureF"
config.templateStorageClass = "ExposureF"
config.differenceStorageClass = "ExposureF"

# The SourceCatalog read as an astropy table (afw's asAstropy), with afw's names.
config.diaSourcesStorageClass = "AstropyTable"
config.idColumn = "id"
config.xColumn = "slot_Centroid_x"
config.yColumn = "slot_Centroid_y"

# id, float32 score and the model's 7-character short version, in input order, as
# an afw Catalog: what FilterDiaSourceReliabilityTask copies into reliability and
# reliabilityVersion.
config.outputSchema = "ap"
config.classificationsStorageClass = "Catalog"

# Prompt Processing scores on the CPU, one detector per worker.
config.device = "cpu"
