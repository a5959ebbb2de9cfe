// data/image_folder.h
// defines: ImageFolderDataset, a directory with one sub-folder per class (torchvision's
// ImageFolder layout): labels are the positions of the sorted sub-folder names, files are taken
// in sorted order, by extension (.jpg .jpeg .png .bmp .gif .tga .ppm .pgm, any case). The caption
// is the class name with '_' shown as ' '. Corrupt images follow the bad-sample policy.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace rankclip {

class ImageFolderDataset : public Dataset {
public:
    explicit ImageFolderDataset(const std::string& root, BadSamplePolicy on_bad = BadSamplePolicy::Skip);
    size_t size() const override { return files_.size(); }
    Sample get(size_t index) const override;
    std::string describe() const override;
    std::vector<std::string> class_names() const override { return classes_; }
    size_t skipped() const { return tracker_.count(); }

private:
    std::string root_;
    BadSamplePolicy on_bad_;
    std::vector<std::string> classes_;
    std::vector<std::pair<std::string, int64_t>> files_;  // (path, label)
    BadSampleTracker tracker_;
};

}  // namespace rankclip
