"""What a run leaves for users: the SavedModel export, the misclassified
images gallery, evaluation reports and the offline (post-training) side of
train.evaluate and train.predict."""
