// Français : traduction de en.js, clé pour clé.
export default {
  'app.name': 'MedPharma Queue',
};
