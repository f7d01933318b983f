// English: the reference catalogue. Every key used by the app is here; other languages translate it.
export default {
  'app.name': 'MedPharma Queue',
};
