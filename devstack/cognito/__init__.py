"""Offline Amazon Cognito user-pool emulator for the dev stack.

Speaks the AWS JSON 1.1 protocol that boto3's ``cognito-idp`` client uses and runs the
app's own trigger functions the way Cognito and Lambda would. Never deployed.
"""
