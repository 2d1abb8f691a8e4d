# The Flask tutorial's app.py as written, with two changes marked "changed": the tutorial's
# DenseNet-121 weights must be downloaded, so the offline default classifier stands in, and the
# class index comes from data/. Everything else (one image per forward pass, no error handling,
# Flask's development server) is the tutorial's. Run it as the tutorial does: `flask run`.
# The tutorial's code is kept as written, so ruff neither formats nor sorts it:
# fmt: off
# isort: skip_file
# ruff: noqa: E501, F401
import io
import json

from torchvision import models
import torchvision.transforms as transforms
from PIL import Image
from flask import Flask, jsonify, request

from ptdeploy.classifier import load_classifier  # changed
from ptdeploy.paths import CLASS_INDEX_JSON  # changed

app = Flask(__name__)
imagenet_class_index = json.load(open(CLASS_INDEX_JSON))  # changed: was '<PATH/TO/.json/FILE>/imagenet_class_index.json'
model = load_classifier().model  # changed: was models.densenet121(weights='IMAGENET1K_V1')
model.eval()


def transform_image(image_bytes):
    my_transforms = transforms.Compose([transforms.Resize(255),
                                        transforms.CenterCrop(224),
                                        transforms.ToTensor(),
                                        transforms.Normalize(
                                            [0.485, 0.456, 0.406],
                                            [0.229, 0.224, 0.225])])
    image = Image.open(io.BytesIO(image_bytes))
    return my_transforms(image).unsqueeze(0)


def get_prediction(image_bytes):
    tensor = transform_image(image_bytes=image_bytes)
    outputs = model.forward(tensor)
    _, y_hat = outputs.max(1)
    predicted_idx = str(y_hat.item())
    return imagenet_class_index[predicted_idx]


@app.route('/predict', methods=['POST'])
def predict():
    if request.method == 'POST':
        file = request.files['file']
        img_bytes = file.read()
        class_id, class_name = get_prediction(image_bytes=img_bytes)
        return jsonify({'class_id': class_id, 'class_name': class_name})


if __name__ == '__main__':
    app.run()
