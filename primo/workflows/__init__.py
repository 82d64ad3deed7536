"""End-to-end workflows that tie the packages together (one module per command that needs several):
``encode_db`` (features + model -> pool), ``query`` (query features or images + model -> probes),
``experiment`` (the in-silico experiment), ``demo`` (the whole pipeline on bundled data).

Nothing heavy is imported here; each workflow imports TensorFlow only when it runs.
"""
