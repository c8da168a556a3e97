"""Encoded images (JPEG, PNG, GIF, BMP, WebP) to uint8 tensors, on the host.

Reading never raises inside the input pipeline: `read_or_flagged` turns an
item that cannot be read, parsed or decoded, or whose header declares more
than `max_pixels` pixels, into a zero image with `ok == False` and a
`problem` naming why, so the pipeline can stop with one line naming the file,
or skip it and count it (--skip_bad_images), instead of dying with an op error
that names nothing (or with the memory a 100-megapixel upload takes).

The bytes in flight per image are bounded: the pixel count is read from the
header before anything is decoded (core/data/headers.py, for every format
tf.io.decode_image reads; one it cannot size is refused, not decoded); a
serving request is bounded as a whole (`decode_request`); a JPEG decodes
only the window it is cropped to (`decode_and_crop_jpeg`, as TF-slim's and
Model Garden's Inception pipelines do); the resize reads the uint8 pixels
directly (no float32 copy of the full image: 144 MB for a 12-megapixel
photo).
"""

from typing import Optional

import tensorflow as tf

from core.data import headers


def resize(image: tf.Tensor, height: int, width: int = 0) -> tf.Tensor:
  """A uint8 [H, W, C] image, or a batch [N, H, W, C], resized (bilinear,
  antialiased, rounded) to uint8 [..., height, width, C]; width defaults to
  height. The input pipeline and the serving signatures both use it, so a
  served image is brought to the training size as training brought it."""
  # uint8 in: the kernel reads the pixels as they are (the same result as
  # a float32 copy, without the copy).
  resized = tf.image.resize(image, [height, width or height],
                            method="bilinear", antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def central_window(fraction: float):
  """The window function (core/data/images.read_or_flagged) of the central
  `fraction` of each side."""
  def window(height, width):
    crop_height = tf.maximum(tf.cast(tf.cast(height, tf.float32) * fraction,
                                     tf.int32), 1)
    crop_width = tf.maximum(tf.cast(tf.cast(width, tf.float32) * fraction,
                                    tf.int32), 1)
    return ((height - crop_height) // 2, (width - crop_width) // 2,
            crop_height, crop_width)
  return window


def central_crop(image: tf.Tensor, fraction: float) -> tf.Tensor:
  """The central `fraction` of each side of an [H, W, C] image."""
  shape = tf.shape(image)
  top, left, height, width = central_window(fraction)(shape[0], shape[1])
  return tf.slice(image, [top, left, 0], [height, width, -1])


def decode(contents: tf.Tensor, channels: int) -> tf.Tensor:
  """uint8 [H, W, channels] from encoded bytes (raises on bad data).

  TF decodes JPEG and PNG to the channels asked, but refuses 1 channel for
  GIF and BMP and decodes WebP only to the channels it holds: those are
  decoded as stored, then converted (grey repeated, alpha dropped, colour
  to grey by tf.image.rgb_to_grayscale).
  """
  def as_asked():
    return tf.io.decode_image(contents, channels=channels,
                              expand_animations=False, dtype=tf.uint8)

  def as_stored():
    image = tf.io.decode_image(contents, expand_animations=False,
                               dtype=tf.uint8)
    colour = tf.cond(tf.shape(image)[2] < 3,
                     lambda: tf.image.grayscale_to_rgb(image[..., :1]),
                     lambda: image[..., :3])
    return colour if channels == 3 else tf.image.rgb_to_grayscale(colour)

  if channels in (1, 3):
    jpeg_or_png = tf.io.is_jpeg(contents) | tf.equal(
        tf.strings.substr(contents, 0, 4), b"\x89PNG")
    image = tf.cond(jpeg_or_png, as_asked, as_stored)
  else:
    image = as_asked()
  image.set_shape([None, None, channels])
  return image


DEFAULT_MAX_PIXELS = 50_000_000  # above 48-megapixel phone photos
# A serving request may declare this many times max_pixels in all: map_fn
# decodes up to 10 images at once, and one 36-byte WebP declaring
# 16383x16383 took 1.8 GB to decode (review of 79d3b92, #4 and #25). 4 x 50
# MP is 16 twelve-megapixel photos, at most 600 MB decoded (RGB) a request.
REQUEST_IMAGES = 4
# And it may hold this many images: each becomes the model's input
# (224 x 224 x 3) however small it is, so 8,000 PNGs of 1 x 1 pixel (a 540 KB
# request) took 3.3 GB before the network ran (review of the fix, #5).
# train.predict sends 64 at a time.
REQUEST_MAX_IMAGES = 256
UNREADABLE = "cannot be read or decoded as an image"


def read_or_flagged(load, key: tf.Tensor, channels: int, size: int, *,
                    window=None, max_pixels: int = DEFAULT_MAX_PIXELS,
                    unreadable: str = UNREADABLE) -> tf.data.Dataset:
  """One element {"image": uint8 [size, size, C], "ok": bool, "problem":
  string ("" when ok), "extra": what `load` returned beside the bytes} for
  the item `key`, never raising.

  Args:
    load: key -> (encoded bytes, extra): reads a file or parses a record;
      `extra` (a dict of tensors, e.g. the record's label) comes back as
      it is. Only ok elements carry it; others carry `extra_default`.
    key: What `load` takes.
    channels: Channels to decode to.
    size: The side the image (or its window) is resized to.
    window: (height, width) -> (top, left, window height, window width),
      int32 scalars: the part of the image to keep (a crop), or None for
      all of it. Its draws must depend on the shape only, which the header
      gives before decoding.
    max_pixels: Images whose header declares more pixels are flagged (not
      decoded).
    unreadable: The problem named when reading or decoding fails, or the
      header cannot be sized (`headers.header_shape`).

  It and the decode run in a one-element dataset whose errors are dropped;
  an item that failed yields a zero image and `ok == False` instead. Used
  inside an order-preserving `interleave`.
  """
  def read(k):
    contents, extra = load(k)
    declared = headers.header_shape(contents)
    sized = declared[0] >= 0
    refused = ~sized | (declared[0] * declared[1] > max_pixels)

    def image():
      if window is None:
        return resize(decode(contents, channels), size)

      def cropped_jpeg():
        top, left, height, width = window(
            tf.cast(declared[0], tf.int32), tf.cast(declared[1], tf.int32))
        cropped = tf.io.decode_and_crop_jpeg(
            contents, tf.stack([top, left, height, width]),
            channels=channels)
        return tf.ensure_shape(cropped, [None, None, channels])

      def cropped_other():
        full = decode(contents, channels)
        shape = tf.shape(full)
        top, left, height, width = window(shape[0], shape[1])
        return tf.slice(full, [top, left, 0], [height, width, -1])

      return resize(tf.cond(tf.io.is_jpeg(contents), cropped_jpeg,
                            cropped_other), size)

    problem = tf.where(sized, tf.strings.join([
        "declares ", tf.strings.as_string(declared[1]), "x",
        tf.strings.as_string(declared[0]), " pixels, more than "
        f"--max_image_pixels={max_pixels}"]), unreadable)
    return {"image": tf.cond(refused,
                             lambda: tf.zeros([size, size, channels],
                                              tf.uint8), image),
            "ok": tf.logical_not(refused),
            "problem": tf.where(refused, problem, ""), "extra": extra}

  good = tf.data.Dataset.from_tensors(key).map(read).ignore_errors()
  extra_spec = good.element_spec["extra"]
  bad = tf.data.Dataset.from_tensors(
      {"image": tf.zeros([size, size, channels], tf.uint8),
       "ok": tf.constant(False), "problem": tf.constant(unreadable),
       "extra": tf.nest.map_structure(
           lambda spec: tf.zeros(spec.shape, spec.dtype)
           if spec.dtype != tf.string else tf.constant(""), extra_spec)})
  return good.concatenate(bad).take(1)


def checked_decode(contents: tf.Tensor, channels: int,
                   max_pixels: int = DEFAULT_MAX_PIXELS,
                   declared: Optional[tf.Tensor] = None) -> tf.Tensor:
  """`decode`, once the header is sized and declares at most `max_pixels`
  (serving: a refusal is an InvalidArgumentError, not memory); `declared`:
  headers.header_shape(contents) when the caller has read it already."""
  if declared is None:
    declared = headers.header_shape(contents)
  with tf.control_dependencies([
      tf.debugging.Assert(declared[0] >= 0, [
          "image header cannot be sized (JPEG, PNG, GIF, BMP and WebP "
          "can; is it cut short?)"]),
      tf.debugging.Assert(declared[0] * declared[1] <= max_pixels, [
          tf.strings.join([
              "image declares ", tf.strings.as_string(declared[1]), "x",
              tf.strings.as_string(declared[0]), " pixels, more than the "
              f"{max_pixels} this model accepts"])])]):
    return decode(contents, channels)


def decode_request(encoded: tf.Tensor, channels: int, height: int,
                   width: int,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> tf.Tensor:
  """uint8 [N, height, width, channels]: a serving request's encoded images
  [N], each decoded by `checked_decode` and resized.

  Before anything is decoded, the request is refused (InvalidArgumentError)
  when it holds more than REQUEST_MAX_IMAGES images, or its images declare
  more than REQUEST_IMAGES * max_pixels in all.
  """
  count = tf.size(encoded)
  with tf.control_dependencies([tf.debugging.Assert(
      count <= REQUEST_MAX_IMAGES, [tf.strings.join([
          "this request holds ", tf.strings.as_string(count),
          f" images, more than the {REQUEST_MAX_IMAGES} this model takes "
          "per request; send them in smaller batches"])])]):
    shapes = tf.map_fn(headers.header_shape, encoded,
                       fn_output_signature=tf.TensorSpec([3], tf.int64))
  # Sides are below 2**31 (or -1): no product or sum overflows.
  total = tf.reduce_sum(tf.minimum(shapes[:, 0] * shapes[:, 1],
                                   max_pixels + 1))
  limit = REQUEST_IMAGES * max_pixels
  with tf.control_dependencies([tf.debugging.Assert(total <= limit, [
      tf.strings.join([
          "the images of this request declare ",
          tf.strings.as_string(total),
          f" pixels in all, more than the {limit} ({REQUEST_IMAGES} x "
          f"{max_pixels}) this model accepts per request; send fewer or "
          "smaller images"])])]):
    return tf.map_fn(  # each header read once (a GIF's is a walk)
        lambda item: resize(checked_decode(item[0], channels, max_pixels,
                                           item[1]), height, width),
        (encoded, shapes), fn_output_signature=tf.TensorSpec(
            [height, width, channels], tf.uint8))
