"""The local loop: the endpoint's parts run on this machine, without an AWS account.

moto's server plays S3, SNS, SQS and CloudFormation, the Hugging Face inference container's
model server serves `inference_code/` on a checkpoint (a tiny random MusicGen by default), and
`AsyncSageMakerEmulator` plays SageMaker's asynchronous queue in between. `python -m
musicgen_local` (`make local`) runs it until Ctrl-C; the tests assemble the same parts.
"""
